"""One module per scenario of issue 5; each exposes `run(kind) -> Figures`."""
