"""Policy tests: small models with expectations about the outcome, run like pytest.

The file format is domain.policytests. Here, in the order ``ordo test`` uses them:

- collection: find test files, read and check them into suites of cases;
- loading: a case's project and policies as it asks for them, and the
  problems with what its expectations name;
- checking: the expectations a planner's outcome does not meet;
- running: load, plan and check each case (and measure coverage);
- coverage: which labelled policy rules the cases exercised;
- results: what a run gives (CaseResult, Coverage, Report).

Every problem in a test file is a diagnostic with file, line and column (as
``ordo check`` gives them); a problem found only once a case's models load
(an unknown resource in an expectation ...) makes that case an error.

Library code: nothing here prints; the CLI (``ordo test``) renders a Report.
"""

from planner.testing.collection import Case, Collection, Suite, collect, discover
from planner.testing.results import CaseResult, Coverage, FileCoverage, Report, RuleCoverage
from planner.testing.running import run, run_case

__all__ = ["Case", "CaseResult", "Collection", "Coverage", "FileCoverage", "Report", "RuleCoverage", "Suite",
           "collect", "discover", "run", "run_case"]
