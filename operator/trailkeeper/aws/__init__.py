"""The AWS layer: sessions and credentials, error taxonomy, rate limits, call recording and the
per-resource-kind clients built on them."""
