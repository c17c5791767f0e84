"""What to purge and the purge APIs of the CDNs in front: Cloudflare, Fastly, CloudFront."""
