"""A signed-in user's own account pages: the apps and scripts holding tokens that act as them ("Connected apps").

Any signed-in user may open these pages, household members included: the admin's OAuth screens are staff-only,
yet every user can approve a device code, so every user must be able to see and revoke what they approved.
"""
