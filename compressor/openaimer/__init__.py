"""The OpenAImer competition protocol: submissions, their self-contained loader, and scoring."""
