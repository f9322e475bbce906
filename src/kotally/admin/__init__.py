"""The admin web UI: users, sign-in, sessions and the server-rendered pages (admin.md §1-2)."""
