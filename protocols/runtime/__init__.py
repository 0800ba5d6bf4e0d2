"""What runs protocols for the command line, without knowing any one of them: the registry
(discovery through entry points), private endpoints for self-contained runs, a simulator's control
path, the heartbeat watch and simulated fleets."""
