"""The card vault: AES-256-GCM records behind opaque tokens, in memory or in SQL."""
