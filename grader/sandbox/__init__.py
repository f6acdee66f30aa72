"""Where learner code runs: a worker process the grader starts, talks to over pipes and kills.

- `process`:   start, talk to and kill the worker (limits, isolation, output caps)
- `worker`:    the worker's own source: the only code that imports learner modules; it imports
               nothing from grader
- `isolation`: the levels (bwrap, namespaces, user, process) and which a command may use
- `proxy`:     `impl` and `helpers` in checks: calls forwarded to the worker, data back
- `pool`:      workers started before they are needed (watch)
- `timeouts`:  what a call that timed out was doing
"""
