"""The citizens' web (R18, R5, R17, R7): filing a case, following it, adding evidence later."""
