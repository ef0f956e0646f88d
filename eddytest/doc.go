// Package eddytest runs eddy pipelines on given events, in process, and
// returns what they wrote: the test driver of `worker test`, `worker dev
// -input` and of Go programs with their own processors (what Kafka
// Streams' TopologyTestDriver is to a topology).
//
// Nothing is mocked. A Runner starts an embedded Kafka-protocol broker
// (franz-go's kfake, spoken to over TCP by the workers' sarama clients as
// any broker is), one memory store and one processor.Worker per pipeline
// (a cascade's stages each in their own group), the runtime `worker run`
// uses; events are produced to the source topics, and what the pipelines
// wrote is read back from their topics as a read_committed consumer sees
// it. The end of the input is the end of a bounded stream: once every
// event has been processed, each source partition's event time jumps to
// its end (processor.Worker.EndOfInput), so every window, session and
// join interval closes and emits, and downstream stages follow through
// the watermark markers.
//
// For results that depend on the events alone, a test run turns idle
// timeouts off (event time moves with the events only), reads every input
// from its start and gives every topic one partition unless told
// otherwise, so that events are processed in the order given. Aggregate
// results do not depend on where batches are cut (an invariant of the
// runtime), so they are the same as on a cluster; with several
// partitions, lateness is judged per partition as on a cluster.
//
// # Test files
//
// A test file, named <pipeline>_test.yaml next to <pipeline>.yaml (or
// naming it: pipeline: file.yaml; pipelines: [a.yaml, b.yaml] for a
// cascade, upstream first; env: {VAR: value} for the pipelines' ${VAR}s,
// over the process's), lists cases:
//
//	tests:
//	  - name: two orders in one minute
//	    partitions: 1            # of every topic (default 1)
//	    end_of_input: close      # the default; open leaves unclosed windows open
//	    tables:                  # rows per table: put on its topic first, or served from memory for a table kept in redis or sql
//	      customers: [{key: c1, value: {name: Ada}}]
//	    input:                   # in order; topic (default: the first source topic), partition, key, value, time, headers
//	      - {key: c1, value: {order_id: o1, qty: 2, ts: "2024-01-01T00:00:01Z"}}
//	      - {key: c1, value: "not json", time: 1704067202000}
//	    output:                  # the sink's records that no other stage reads
//	      - {key: c1, value: {orders: 1, items: 2}}
//	    dead_letters:
//	      - {key: c1, value: "not json", error: "not an object"}
//	    late: []
//	    counts: {duplicates: 0, filtered: 0}  # counters at the end, summed over the pipelines
//
// A value that is a mapping, list, number or boolean is JSON; a string is
// the exact bytes (a malformed event, or JSON text compared byte for
// byte); null is a tombstone. An input's time is its record timestamp
// (what event time is when source.event_time is not set): RFC 3339 or
// Unix milliseconds; without one an event takes the previous event's
// (DefaultTime for the first). Expected records are compared as
// multisets (the order of results across keys and partitions is not part
// of a pipeline's meaning): topic and partition when given, the key
// (absent: none), the value as JSON by meaning (key order and number
// spelling do not matter) or byte for byte for a string, the headers
// given, and for dead letters and late events a part of the reason
// (error). An absent list expects nothing. `worker test -update`
// rewrites the lists of failing cases from what was written.
//
// Custom processors need a Go program: TestFile runs a file's cases as
// subtests with the processors given in FileConfig.
package eddytest
