"""What the app needs beside a cluster: KEDA, a broker, an object store, an image registry."""
