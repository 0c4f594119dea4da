"""Command line (placeholder until filled)."""


def main() -> int:
    """Run the command line."""
    return 0
