"""Moving networks and weights between numcnn and other frameworks (optional dependencies).

Side room: may import numpy and numcnn.nn (modules and their state dicts);
torch is imported inside the functions that need it, so numcnn runs without it.
"""
