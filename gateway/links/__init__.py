"""Remote-control links: mint, redeem (single use, bound to the redeemer), revoke; hashed at rest."""
