"""`python -m bench` (`make bench`): the event store and the system measured against baselines."""
