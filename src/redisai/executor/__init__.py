"""The executor: the process in which a device queue's models load and run, apart from redis-server.

Nothing here is imported by redis-server's own process except to spawn and talk to executors; this
package imports nothing of the server (no cbridge, no keyspace).
"""
