package delivery_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/DataDog/datadog-api-client-go/v2/api/datadog"
	"github.com/DataDog/datadog-api-client-go/v2/api/datadogV2"

	"github.com/trail-audit/trail/internal/receiver"
)

// datadogItem is the official client's log item: what Trail sends must
// decode as one.
type datadogItem = datadogV2.HTTPLogItem

// TestDatadogReceiver_OfficialClient keeps the Datadog receiver honest: the
// official Go client's SubmitLog is accepted, a wrong key is refused as
// Datadog refuses it.
func TestDatadogReceiver_OfficialClient(t *testing.T) {
	t.Parallel()
	rcv := receiver.NewDatadog(false, "client-key")
	defer rcv.Close()
	submit := func(key string) (int, error) {
		ctx := context.WithValue(context.Background(), datadog.ContextAPIKeys, map[string]datadog.APIKey{"apiKeyAuth": {Key: key}})
		ctx = context.WithValue(ctx, datadog.ContextOperationServerIndices, map[string]int{"v2.LogsApi.SubmitLog": 1})
		ctx = context.WithValue(ctx, datadog.ContextOperationServerVariables, map[string]map[string]string{
			"v2.LogsApi.SubmitLog": {"name": strings.TrimPrefix(rcv.URL(), "http://"), "protocol": "http"}})
		api := datadogV2.NewLogsApi(datadog.NewAPIClient(datadog.NewConfiguration()))
		item := datadogV2.NewHTTPLogItem(`{"id":"evt_1","index":7,"action":"user.signed_in"}`)
		item.SetDdsource("trail")
		item.SetService("audit-logs")
		item.SetHostname("h1")
		item.AdditionalProperties = map[string]any{"event_id": "evt_1"}
		gz := datadogV2.CONTENTENCODING_GZIP
		_, resp, err := api.SubmitLog(ctx, []datadogV2.HTTPLogItem{*item}, datadogV2.SubmitLogOptionalParameters{ContentEncoding: &gz, Ddtags: datadog.PtrString("env:test")})
		if resp == nil {
			return 0, err
		}
		return resp.StatusCode, err
	}
	if status, err := submit("client-key"); status != 202 || err != nil {
		t.Fatalf("official client: %d, %v", status, err)
	}
	items := rcv.Items()
	if len(items) != 1 || items[0]["ddsource"] != "trail" || items[0]["event_id"] != "evt_1" {
		t.Fatalf("received %v", items)
	}
	if evs := rcv.Events(); len(evs) != 1 || evs[0].ID != "evt_1" || evs[0].Index != 7 {
		t.Fatalf("events %v", evs)
	}
	if status, _ := submit("wrong-key"); status != 403 {
		t.Fatalf("wrong key: %d, want 403", status)
	}
}

// TestSplunkReceiver_OfficialClient keeps the HEC receiver honest: Splunk's
// own Node.js client (splunk-logging) posts to it and is accepted. It
// needs node and npm (and the npm registry); TRAIL_REQUIRE_NODE=1 makes
// their absence a failure.
func TestSplunkReceiver_OfficialClient(t *testing.T) {
	t.Parallel()
	node, errNode := exec.LookPath("node")
	npm, errNpm := exec.LookPath("npm")
	if errNode != nil || errNpm != nil {
		if os.Getenv("TRAIL_REQUIRE_NODE") == "1" {
			t.Fatal("node and npm are required (TRAIL_REQUIRE_NODE=1)")
		}
		t.Skip("node or npm not installed")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	install := exec.CommandContext(ctx, npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", dir, "splunk-logging@0.11.1")
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("npm install splunk-logging: %v\n%s", err, out)
	}
	rcv := receiver.NewSplunk(false, false, "00000000-0000-0000-0000-000000000000")
	defer rcv.Close()
	script := `
const SplunkLogger = require("splunk-logging").Logger;
const logger = new SplunkLogger({token: process.argv[2], url: process.argv[3], maxBatchCount: 2});
logger.eventFormatter = (message, severity) => message; // the event as it is, as Trail sends it
logger.error = (err, ctx) => { console.error("splunk-logging error:", err.message); process.exitCode = 1; };
logger.send({message: {id: "evt_a", index: 1, action: "user.signed_in"}, metadata: {source: "trail", sourcetype: "_json", index: "main", host: "h1"}});
logger.send({message: {id: "evt_b", index: 2, action: "user.signed_out"}, metadata: {source: "trail", sourcetype: "_json", index: "main", host: "h1"}}, () => {});
`
	path := filepath.Join(dir, "oracle.js")
	if err := os.WriteFile(path, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	run := exec.CommandContext(ctx, node, path, "00000000-0000-0000-0000-000000000000", rcv.URL())
	run.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	if out, err := run.CombinedOutput(); err != nil {
		t.Fatalf("splunk-logging: %v\n%s", err, out)
	}
	evs := rcv.Events()
	if len(evs) != 2 || evs[0].ID != "evt_a" || evs[1].Index != 2 {
		t.Fatalf("received %v", evs)
	}
	o := rcv.Objects()[0]
	if o["source"] != "trail" || o["host"] != "h1" || o["time"] == nil {
		t.Fatalf("HEC object %v", o)
	}
	// A wrong token: the client reports Splunk's refusal.
	bad := exec.CommandContext(ctx, node, path, "wrong-token", rcv.URL())
	bad.Env = run.Env
	if out, err := bad.CombinedOutput(); err == nil || !strings.Contains(string(out), "Invalid token") {
		t.Fatalf("wrong token: %v\n%s", err, out)
	}
}
