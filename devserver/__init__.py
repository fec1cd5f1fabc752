"""The local stack: embedded moto, the table and bucket, and an HTTP edge in front of
the Chalice app, in one foreground process (`make run`). Not deployed."""
