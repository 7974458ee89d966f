"""AgentScaler: scale tool-use environments, simulate agents in them, train on the results."""
