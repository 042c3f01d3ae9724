"""Historical odds files (docs/reference/historical-data.md): readers that turn a season of
odds in a third party's file format into the same `OddsBatch`es the live feeds emit, on event
time, one batch per board (snapshot) applied whole. `bot.feeds.history.feed.HistoryFeed` plays
them through the engine; `bot backtest` and `bot data` pick the reader from the file's header
(`detect`)."""
