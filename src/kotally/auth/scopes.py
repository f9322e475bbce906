SCOPES = ("grant", "check", "deduct", "restore", "summary")
