"""New customer onboarding: account, screening, portal invitation and welcome mail as one traceable record."""
