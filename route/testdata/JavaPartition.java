import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

// Prints, for each line of stdin (a key) and each partition count given as
// an argument, the partition Apache Kafka's Java producer chooses for a
// record with that key: "<partition> <partition> ...", one line per key.
// Run as a single-file program: java -cp kafka-clients.jar JavaPartition.java 1 3 12
public class JavaPartition {
    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String key; (key = in.readLine()) != null; ) {
            byte[] b = key.getBytes(StandardCharsets.UTF_8);
            for (int i = 0; i < args.length; i++) {
                if (i > 0) out.append(' ');
                out.append(BuiltInPartitioner.partitionForKey(b, Integer.parseInt(args[i])));
            }
            out.append('\n');
        }
        System.out.print(out);
    }
}
