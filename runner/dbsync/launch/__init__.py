"""The CI side: provision a runner next to the databases, run the job there, tear it down."""
