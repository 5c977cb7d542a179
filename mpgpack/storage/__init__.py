"""Object storage for mpgpack: training data read from, and bundles published to, S3."""
