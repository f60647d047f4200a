"""The Faust worker: the app, its topics and tables, the runtime the agents share, the web
endpoints, delivery guarantees around Faust (every private-API touch), and the agents."""
