"""Episodes: each customer's follow-up as start/stop rows, and the vocabulary of measures."""
