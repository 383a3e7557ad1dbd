"""Claims: the article's statements as data, and their assessment against the signal results."""
