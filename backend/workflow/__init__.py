"""What happens to a case after it is filed: acts on a case as services over the pure core."""
