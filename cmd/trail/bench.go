package main

import (
	"context"
	"errors"
)

func (m *Main) runBench(ctx context.Context, args []string) error {
	return errors.New("bench: not yet")
}
