"""Helpers shared by integration tests and benchmarks that start real peers."""
