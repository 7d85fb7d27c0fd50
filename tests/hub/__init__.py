"""The Hub: the local test server, pushes that fail half-way, round trips by id, and the cards."""
