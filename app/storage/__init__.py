"""Object storage: `base` (the protocol the use cases need) and its adapters (`s3`, `azure`)."""
