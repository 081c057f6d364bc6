"""Product ordering (TMF622, minimal): hand-made orders, their lifecycle and their decomposition into a plan."""
