package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/valyala/fastjson"

	"github.com/trail-audit/trail"
)

// Limits of an object of an S3 or GoogleCloudStorage stream.
const (
	ObjectMaxEvents = 10000
	ObjectMaxBytes  = 16 << 20 // uncompressed
	// ObjectInterval is the least time between two objects of a stream,
	// so that a busy stream writes fewer, larger objects.
	ObjectInterval = time.Second
)

// Bucket writes events to an S3 bucket (or Google Cloud Storage through
// its S3-interoperable XML API with an HMAC key) as gzipped NDJSON
// objects, one event per line, under keys
//
//	<prefix>YYYY/MM/DD/HH/<organization>_<first index>-<last index>.ndjson.gz
//
// dated by the first event's received_at, written create-only
// (If-None-Match: *): a retry of a batch whose object exists is a
// success, as the same index range holds the same events.
type Bucket struct {
	Client         *s3.Client
	Bucket, Prefix string
	OrganizationID string

	p    fastjson.Parser
	last time.Time
}

// NewBucket returns the destination of an S3 or GoogleCloudStorage
// stream. SigV4 signing is the AWS SDK's.
func NewBucket(client *http.Client, s *trail.Stream) *Bucket {
	c := s.Config
	o := s3.Options{
		HTTPClient:  client,
		Retryer:     aws.NopRetryer{}, // the worker retries, with its backoff
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, s.Secrets.SecretAccessKey, ""),
		Region:      c.Region,
	}
	if s.Type == trail.StreamGCS {
		o.Credentials = credentials.NewStaticCredentialsProvider(c.HMACAccessID, s.Secrets.HMACSecret, "")
		if o.Region == "" {
			o.Region = "auto" // what Google documents for HMAC keys
		}
		o.BaseEndpoint = aws.String("https://storage.googleapis.com")
		o.UsePathStyle = true
		// The XML API takes no streaming checksum trailers.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
	}
	if c.Endpoint != "" {
		o.BaseEndpoint = aws.String(c.Endpoint)
		o.UsePathStyle = true
	}
	return &Bucket{Client: s3.New(o), Bucket: c.Bucket, Prefix: c.Prefix, OrganizationID: s.OrganizationID}
}

// MaxBatch implements Destination.
func (d *Bucket) MaxBatch() int { return ObjectMaxEvents }

// ObjectKey is the key of the object that holds the events from first to
// last.
func ObjectKey(prefix, orgID string, received time.Time, first, last int64) string {
	return fmt.Sprintf("%s%s/%s_%020d-%020d.ndjson.gz", prefix, received.UTC().Format("2006/01/02/15"), orgID, first, last)
}

// permanentS3 are the S3 error codes that no retry fixes.
var permanentS3 = map[string]bool{"AccessDenied": true, "SignatureDoesNotMatch": true, "InvalidAccessKeyId": true,
	"NoSuchBucket": true, "InvalidBucketName": true, "AuthorizationHeaderMalformed": true, "AccountProblem": true,
	"InvalidSecurity": true, "NotSignedUp": true, "AllAccessDisabled": true, "InvalidToken": true, "MissingSecurityHeader": true}

// Send implements Destination.
func (d *Bucket) Send(ctx context.Context, events []*trail.Event) (int, error) {
	if wait := time.Until(d.last.Add(ObjectInterval)); wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
	received, err := receivedAt(&d.p, events[0])
	if err != nil {
		return 0, &Failure{Permanent: true, Message: "an event's received_at could not be read", Err: err}
	}
	body := make([]byte, 0, bodySize(events, 1, ObjectMaxBytes))
	n := 0
	for _, ev := range events {
		start := len(body)
		body = append(body, eventJSON(ev)...)
		body = append(body, '\n')
		if n > 0 && len(body) > ObjectMaxBytes {
			body = body[:start]
			break
		}
		n++
	}
	first, last := events[0].Index, events[n-1].Index
	key := ObjectKey(d.Prefix, d.OrganizationID, received, first, last)
	if first < 0 {
		// A test event (POST …/test) is not in the log.
		key = d.Prefix + "trail-test/" + events[0].ID + ".ndjson.gz"
	}
	zipped := gzipBytes(body)
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	_, err = d.Client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(d.Bucket), Key: aws.String(key), Body: bytes.NewReader(zipped),
		ContentLength: aws.Int64(int64(len(zipped))), ContentType: aws.String("application/x-ndjson"), ContentEncoding: aws.String("gzip"),
		IfNoneMatch: aws.String("*"),
		Metadata: map[string]string{"trail-organization": d.OrganizationID, "trail-first-index": strconv.FormatInt(first, 10),
			"trail-last-index": strconv.FormatInt(last, 10), "trail-events": strconv.Itoa(n)},
	})
	d.last = time.Now()
	if err == nil {
		return n, nil
	}
	if err := s3Failure(err, key); err != nil {
		return 0, err
	}
	return n, nil // the object exists: an earlier attempt wrote it
}

// s3Failure classifies a PutObject error: an existing object (412) is
// not one (see Send); refused credentials and missing buckets are
// permanent; the rest is retried.
func s3Failure(err error, key string) error {
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	// The tenant sees the status and the store's own error code and
	// message, or the kind of a transport error (Classify); the SDK's
	// text (the request, the resolver's address) goes to the log only.
	var api smithy.APIError
	code, msg := "", ""
	if errors.As(err, &api) {
		code = api.ErrorCode()
		msg = snippet([]byte(code + ": " + api.ErrorMessage()))
	}
	var wait time.Duration
	switch {
	case status != 0 && msg != "":
		msg = fmt.Sprintf("HTTP %d: %s", status, msg)
	case status != 0:
		msg = fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	case msg == "":
		msg = Classify(err)
	}
	if status != 0 && re.Response != nil {
		wait = retryAfter(re.Response.Header, time.Now())
	}
	switch {
	case status == http.StatusPreconditionFailed || code == "PreconditionFailed":
		return nil
	case permanentS3[code], status == http.StatusForbidden, status == http.StatusUnauthorized, status == http.StatusNotFound:
		return &Failure{Permanent: true, Message: msg, Err: err}
	case status == http.StatusRequestEntityTooLarge || code == "EntityTooLarge":
		return &Failure{TooLarge: true, Message: msg, Err: err}
	}
	return &Failure{Message: msg + " (object " + key + ")", RetryAfter: wait, Err: err}
}
