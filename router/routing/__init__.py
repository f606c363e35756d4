"""Where a request goes: dispatch, strategies, failure steps, breakers, recovery."""
