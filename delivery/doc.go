// Package delivery delivers organizations' events to their log streams
// (SPEC §10): Datadog, Splunk HEC, Amazon S3, Google Cloud Storage and
// generic HTTPS endpoints signed per Standard Webhooks.
//
// A Worker in every trail serve claims streams (one node holds a stream
// at a time, under a lease it renews), reads each stream's events from its
// cursor in index order, sends them in batches and moves the cursor in
// the database only after the destination accepted them: delivery is at
// least once and a restart resumes where it stopped. Failures are retried
// with exponential backoff and jitter, honouring Retry-After.
//
//	w := &delivery.Worker{Streams: streams, Events: events, Open: box.OpenStream, Client: delivery.NewClient(delivery.ClientOptions{})}
//	w.Start()
//	defer w.Stop()
package delivery
