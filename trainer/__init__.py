"""agentscaler.trainer"""
