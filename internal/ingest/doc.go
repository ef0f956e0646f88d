// Package ingest is the machinery of `worker ingest`: it reads JSON lines
// or CSV, computes each record's key and replay-stable ID, and publishes
// the records to a Kafka topic, accounting for every delivery.
//
// # Records and IDs
//
// A Decoder reads one input and yields its records in order, each with
// the line where it starts, its raw text and, when good, its event and
// Kafka value (a JSON line as read; a CSV row as a JSON object of its
// columns). A bad record (invalid JSON, not an object, a CSV row with the
// wrong number of fields, a value a typed column refuses) is a Record
// with Err set: the input goes on after it. Only a read error or a bad
// CSV header ends an input.
//
// Every Kafka record carries an eddy-id header, ID(source, line):
// "<source>:<line>", where the source is a file's name, a name given to
// stdin, or an HTTP request's RequestSource (its Idempotency-Key). The
// same input under the same name gives the same IDs on every run, and
// package route places a record by its key and ID only, so a re-run
// after a crash sends each record again to the partition of its first
// copy with the same ID, where an eddy pipeline's dedup (whose default
// event ID is the eddy-id header) drops it. Inputs with no stable name
// get one of their own (RunName), so they never collide with another.
//
// # Delivery
//
// A Publisher wraps one sarama async producer (idempotent, acks from all
// in-sync replicas, one request in flight per broker: see
// ConfigureProducer) and sets each record's partition itself (sarama's
// manual partitioner) from its route.Router; a multicast record becomes
// one copy per partition, each with route.CopyID. Each Send is made on
// behalf of a Batch (a file, an HTTP request), which counts its records'
// acknowledgements and failures; Batch.Wait returns once all are settled.
// Counters add up the records of all batches, for progress lines.
//
// # Goroutines and locks
//
// A Publisher owns one goroutine, collect, which reads the producer's
// Successes and Errors until both close and settles each message in its
// Batch (under the Batch's mutex; Batch.OnFail is called from it, after
// the mutex is released). Send may be called from any number of
// goroutines; each holds the Publisher's RWMutex for reading while it
// hands its copies to the producer, and Close takes it for writing, after
// waking blocked senders, so that the producer's input is closed only
// once no Send is inside it. The Handler serves each HTTP request on its
// net/http goroutine: it decodes the whole body, then sends and waits for
// its own Batch. Decoders are not safe for concurrent use; Keys are (each
// goroutine keeps its own pipeline.Vars); Rejects serialises its writes.
//
// # Files
//
//	decode.go   Format, Decoder (JSON lines, CSV with column types), Record, LineError
//	id.go       ID, RunName, RequestSource (Idempotency-Key checks)
//	key.go      Key: the -key expression, compiled as a pipeline's sink.key
//	publish.go  Counters, ConfigureProducer, Publisher (Send, Close), Batch
//	rejects.go  Rejects: the reject file
//	http.go     Handler: POST /ingest and GET /healthz
package ingest
