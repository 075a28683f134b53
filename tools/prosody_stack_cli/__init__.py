"""prosody-stack: the operator's command-line tool (see README, "The prosody-stack command")."""
