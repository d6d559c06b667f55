"""Reusable pieces of the operator screens (All-in-One components and small builders)."""
