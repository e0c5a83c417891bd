"""Scheduling: which host gets a server. Filters and weighers are pure functions over
``HostState`` and ``RequestSpec``; ``claims`` turns the choice into one atomic write.
"""
