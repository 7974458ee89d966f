"""agentscaler.pipeline"""
