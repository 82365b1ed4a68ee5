"""The `bonecds` command line: `app` (evaluate, test, diff, replay, schema), with the `rules`,
`batch` and `serve` commands beside it in private modules."""
