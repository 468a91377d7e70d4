"""The data layer: read a company's files, check them against the contract, count what is left out."""
