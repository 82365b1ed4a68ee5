"""The `bonecds` command line: `app` (evaluate, test, diff, schema...), with `rules`, `batch`
and `serve` beside it."""
