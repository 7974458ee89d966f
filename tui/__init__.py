"""agentscaler.tui"""
