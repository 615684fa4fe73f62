package delivery_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/trail-audit/trail"
	"github.com/trail-audit/trail/delivery"
	"github.com/trail-audit/trail/internal/receiver"
	"github.com/trail-audit/trail/internal/s3test"
	"github.com/trail-audit/trail/internal/testwait"
)

const (
	gwAccess = s3test.Access
	gwSecret = s3test.Secret
)

// startVersitygw runs versitygw (internal/s3test) and returns its
// endpoint.
func startVersitygw(t *testing.T) string {
	t.Helper()
	return s3test.Start(t).Endpoint
}

func s3Client(endpoint, access, secret string) *s3.Client {
	return s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(access, secret, "")})
}

// readObjects returns the events of every object under the prefix, and
// checks each key against the index range of its lines.
func readObjects(t *testing.T, c *s3.Client, bucket, prefix string) []receiver.Event {
	t.Helper()
	ctx := context.Background()
	keyRE := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `\d{4}/\d{2}/\d{2}/\d{2}/org_[0-9A-Z]+_(\d{20})-(\d{20})\.ndjson\.gz$`)
	var evs []receiver.Event
	p := s3.NewListObjectsV2Paginator(c, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range page.Contents {
			m := keyRE.FindStringSubmatch(*o.Key)
			if m == nil {
				t.Fatalf("object key %s", *o.Key)
			}
			obj, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: o.Key})
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(obj.Body)
			obj.Body.Close()
			if aws.ToString(obj.ContentEncoding) != "gzip" || aws.ToString(obj.ContentType) != "application/x-ndjson" {
				t.Fatalf("object %s: encoding %q, type %q", *o.Key, aws.ToString(obj.ContentEncoding), aws.ToString(obj.ContentType))
			}
			zr, err := gzip.NewReader(bytes.NewReader(body))
			if err != nil {
				t.Fatalf("object %s is not gzip: %v", *o.Key, err)
			}
			plain, _ := io.ReadAll(zr)
			var lines []receiver.Event
			for _, l := range bytes.Split(bytes.TrimSuffix(plain, []byte("\n")), []byte("\n")) {
				ev, err := receiver.ParseEvent(l)
				if err != nil {
					t.Fatalf("object %s: %v", *o.Key, err)
				}
				lines = append(lines, ev)
			}
			first, _ := strconv.ParseInt(m[1], 10, 64)
			last, _ := strconv.ParseInt(m[2], 10, 64)
			if lines[0].Index != first || lines[len(lines)-1].Index != last {
				t.Fatalf("object %s holds %d to %d", *o.Key, lines[0].Index, lines[len(lines)-1].Index)
			}
			evs = append(evs, lines...)
		}
	}
	return evs
}

type objectEvents struct {
	t      *testing.T
	c      *s3.Client
	bucket string
	prefix string
}

func (o objectEvents) Events() []receiver.Event { return readObjects(o.t, o.c, o.bucket, o.prefix) }

// TestBucket delivers to S3 and to Google Cloud Storage's XML API (both
// through versitygw, which checks SigV4), refuses wrong credentials as
// AWS does, and writes create-only.
func TestBucket(t *testing.T) {
	t.Parallel()
	endpoint := startVersitygw(t)
	admin := s3Client(endpoint, gwAccess, gwSecret)
	ctx := context.Background()
	for _, b := range []string{"trail-s3", "trail-gcs"} {
		if _, err := admin.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
	}
	f := newFixture(t)

	s3st := &trail.Stream{Type: trail.StreamS3, Config: trail.StreamConfig{Bucket: "trail-s3", Region: "us-east-1", Prefix: "audit/",
		AccessKeyID: gwAccess, Endpoint: endpoint}, Secrets: trail.StreamSecrets{SecretAccessKey: gwSecret}}
	first := f.create(s3st)
	// versitygw signs for its one region; Google's own takes "auto", the
	// default.
	gcs := &trail.Stream{Type: trail.StreamGCS, Config: trail.StreamConfig{Bucket: "trail-gcs", Region: "us-east-1", HMACAccessID: gwAccess, Endpoint: endpoint},
		Secrets: trail.StreamSecrets{HMACSecret: gwSecret}}
	firstGCS := f.create(gcs)
	last := f.append(2500)
	f.waitDelivered(objectEvents{t, admin, "trail-s3", "audit/"}, s3st.ID, first, last)
	f.waitDelivered(objectEvents{t, admin, "trail-gcs", ""}, gcs.ID, firstGCS, last)

	// Wrong credentials fail as on AWS: invalid, with the S3 error code.
	bad := &trail.Stream{Type: trail.StreamS3, Config: trail.StreamConfig{Bucket: "trail-s3", Region: "us-east-1", Prefix: "bad/",
		AccessKeyID: gwAccess, Endpoint: endpoint}, Secrets: trail.StreamSecrets{SecretAccessKey: "not-the-secret"}}
	f.create(bad)
	testwait.For(t, 10*time.Second, "state invalid", func() bool { return f.stream(bad.ID).State == trail.StreamInvalid })
	if s := f.stream(bad.ID); !strings.Contains(s.LastError, "SignatureDoesNotMatch") || !strings.Contains(s.LastError, "HTTP 403") {
		t.Fatalf("wrong secret: last error %q", s.LastError)
	}
	badGCS := &trail.Stream{Type: trail.StreamGCS, Config: trail.StreamConfig{Bucket: "trail-gcs", Region: "us-east-1", Prefix: "bad/",
		HMACAccessID: "GOOG1EUNKNOWNKEY", Endpoint: endpoint}, Secrets: trail.StreamSecrets{HMACSecret: gwSecret}}
	f.create(badGCS)
	testwait.For(t, 10*time.Second, "state invalid", func() bool { return f.stream(badGCS.ID).State == trail.StreamInvalid })
	// AWS answers 403 InvalidAccessKeyId; versitygw 404 XAdminUserNotFound.
	if s := f.stream(badGCS.ID); !strings.HasPrefix(s.LastError, "HTTP 403") && !strings.HasPrefix(s.LastError, "HTTP 404") {
		t.Fatalf("unknown HMAC key: last error %q", s.LastError)
	}
	missing := &trail.Stream{Type: trail.StreamS3, Config: trail.StreamConfig{Bucket: "no-such-bucket", Region: "us-east-1",
		AccessKeyID: gwAccess, Endpoint: endpoint}, Secrets: trail.StreamSecrets{SecretAccessKey: gwSecret}}
	f.create(missing)
	testwait.For(t, 10*time.Second, "state invalid", func() bool { return f.stream(missing.ID).State == trail.StreamInvalid })
	if s := f.stream(missing.ID); !strings.Contains(s.LastError, "NoSuchBucket") {
		t.Fatalf("missing bucket: last error %q", s.LastError)
	}

	// Create-only: a batch sent again finds its object and counts as
	// delivered, and the object is not overwritten.
	st := f.stream(s3st.ID)
	if err := f.box.OpenStream(st); err != nil {
		t.Fatal(err)
	}
	st.Config.Prefix = "again/"
	page, err := f.events.FindEvents(ctx, trail.EventFilter{OrganizationID: f.org, Ascending: true, Raw: true, Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	d := delivery.NewBucket(delivery.NewClient(delivery.ClientOptions{AllowPrivate: true}), st)
	if n, err := d.Send(ctx, page.Events); n != 3 || err != nil {
		t.Fatalf("first send: %d, %v", n, err)
	}
	altered := make([]*trail.Event, 3)
	for i, ev := range page.Events {
		c := *ev
		c.Raw = strings.Replace(c.Raw, `"action":"`, `"action":"altered.`, 1)
		altered[i] = &c
	}
	d = delivery.NewBucket(delivery.NewClient(delivery.ClientOptions{AllowPrivate: true}), st)
	if n, err := d.Send(ctx, altered); n != 3 || err != nil {
		t.Fatalf("second send: %d, %v", n, err)
	}
	stored := readObjects(t, admin, "trail-s3", "again/")
	if len(stored) != 3 || strings.Contains(string(stored[0].Raw), "altered.") {
		t.Fatalf("the object was overwritten: %s", stored[0].Raw)
	}
}
