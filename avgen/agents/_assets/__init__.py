"""What every family that pays for assets shares: the content-addressed cache
(`cache.AssetCache`, a folder or an fsspec URL), one request in flight per asset
(`flight`), the journal of long-running operations accepted but not yet collected
(`journal`) and the store behind a cache URL (`remote`). Nothing here knows a service."""
