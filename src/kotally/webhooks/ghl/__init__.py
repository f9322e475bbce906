"""The GoHighLevel half of the webhooks (webhooks.md §3): one endpoint for every location."""
