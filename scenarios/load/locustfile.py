"""The sandbox's load test: salespeople, order processing, readers and a sync probe against a running stack.

Run it with ``sandbox load`` (it starts a stack when given no URLs, runs Locust headless in its own process
and prints a summary), or with Locust itself::

    SANDBOX_SALES_URL=http://127.0.0.1:5101 SANDBOX_SCM_URL=http://127.0.0.1:5102 \\
        python -m locust -f scenarios/load/locustfile.py --headless -u 20 -r 5 -t 1m

User classes (weights): ``Salesperson`` 3 (leads, prospects, quotes to orders), ``OrderProcessor`` 2 (SCM
orders to invoices), ``Reader`` 3 (OData list views, lookups, counts, expands), ``SyncProbe`` exactly one
(propagation latency, reported as request type ``SYNC``). Pick some with Locust's class arguments, e.g.
``... locustfile.py Reader SyncProbe``.
"""

from scenarios.load.readers import Reader
from scenarios.load.sales_users import Salesperson
from scenarios.load.scm_users import OrderProcessor
from scenarios.load.sync_probe import SyncProbe

__all__ = ["Salesperson", "OrderProcessor", "Reader", "SyncProbe"]
