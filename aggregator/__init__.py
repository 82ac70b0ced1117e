"""aggregator: many news feeds in, one deduplicated merged feed out, all kept in SQLite."""

__version__ = "0.1.0"
PROJECT_URL = "https://github.com/aggregator-project/aggregator"
