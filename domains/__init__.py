"""agentscaler.domains"""
